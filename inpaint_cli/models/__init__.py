"""One module per paper (architecture + training recipe) plus shared building blocks.

Every module here is imported by `inpaint_cli.registry` on first use, so a new model file registers
itself without any other file changing.
"""

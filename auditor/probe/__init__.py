"""The runtime probe: the one part of the tool that imports torch, transformers and peft.

Nothing in the static path may import this package.
"""

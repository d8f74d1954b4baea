"""What the recipes share: the recipe interface and Keras building blocks.

Kept outside ``training.recipes``, whose every module is imported as a recipe module.
"""

"""Evaluation on top of the model: compare prompt variants, embed descriptor sets, interpret learned
contexts. They need a model, so they live in trainer; their commands (`promptkit compare / embed /
interpret`) reach the promptkit CLI through the `promptkit.commands` entry point.
"""

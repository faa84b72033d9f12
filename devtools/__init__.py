"""What developers run: the chart check, its wiring rules, and the planted-bug run.
What an operator runs is in `tools`.
"""

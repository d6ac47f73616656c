"""Result files: written once at the end, atomically, never over an input.
"""

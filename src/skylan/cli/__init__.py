"""The ``skylan`` command line (Typer + Rich). Commands are thin: they parse
arguments, call the SDK or a library, and render tables or JSON.
"""

"""Thin click commands: parse options, call the library, print the result."""

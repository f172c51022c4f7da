"""fastbp's version, in a module of its own: every layer may read it (the kernels' cache
folder is named after it) without importing the package's top level."""
__version__ = "0.1.0"

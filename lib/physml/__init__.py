"""physml: physics versus machine learning, one notebook-first study at a time."""

__version__ = "0.1.0"

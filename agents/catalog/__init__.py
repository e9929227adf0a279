"""Built-in agents. Every module in this package is imported, so a new agent is one new file here with one
``@register`` decorator."""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

"""The package version, at the ground floor: modules that stamp it into files (exports, runs, bench
JSON) import it from here, not from the package root (whose __init__ re-exports the runtime)."""
__version__ = "0.1.0"

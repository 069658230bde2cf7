"""Build script for the one optional C extension; all metadata is in pyproject.toml.

``replayer.archive._fastrows`` speeds up reading archives (see its source). It is
optional: without a C compiler the install goes on and the reader uses its Python path.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "replayer.archive._fastrows",
            ["replayer/archive/_fastrows.c"],
            optional=True,
        )
    ]
)

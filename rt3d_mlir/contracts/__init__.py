"""The contracts between stages, each defined once: file formats and ABIs.

Standard library only, so that every stage (pruning, compiler, runtime) can
import them without pulling in another stage.
"""

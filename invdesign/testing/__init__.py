"""Test support shipped with the package: toy problems with known optima and the ``ProblemContract`` mixin.

Importing ``invdesign.testing.problem_contract`` needs pytest only to run its checks, not to import it.
"""

from invdesign.testing.problem_contract import ProblemContract
from invdesign.testing.toy_problems import TOY_PROBLEMS

__all__ = ["ProblemContract", "TOY_PROBLEMS"]

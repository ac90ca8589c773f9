"""The multi-objective toy problems pass the problem contract (objective vectors and their gradients too)."""

import pytest

from invdesign.testing import ProblemContract
from invdesign.testing.toy_multiobjective import TOY_MULTIOBJECTIVE


@pytest.fixture(params=sorted(TOY_MULTIOBJECTIVE))
def toy_name(request):
    return request.param


class TestToyMultiObjectiveContract(ProblemContract):
    @pytest.fixture(autouse=True)
    def _pick(self, toy_name):
        self.toy_name = toy_name

    def make_problem(self):
        return TOY_MULTIOBJECTIVE[self.toy_name]()

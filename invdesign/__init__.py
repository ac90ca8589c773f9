"""invdesign: inverse design of nanoscale electronic devices on a differentiable NEGF engine.

Data flows one way: parameters -> physics (``problem.simulate`` on ``tb`` and ``negf``) -> objective and
constraints -> optimizer, which asks for the next parameters; a campaign runs many (problem, optimizer,
seed) runs, each in its own directory, and the report reads those directories.

Layers, bottom up; a layer imports only the ones listed for it (``tests/test_layering.py`` imports each
in a fresh interpreter and checks what got loaded):

======================  ==============================================================  =========================
layer                   holds                                                           may import
======================  ==============================================================  =========================
``negf``                leads, RGF, observables (T, DOS, current, density), grids       torch, numpy, scipy
``scf``                 the self-consistent Poisson-NEGF loop and its adjoint           ``negf`` (``tb``: examples)
``tb``                  Slater-Koster models, structures, slicing into Device/Lead      ``negf`` (the types)
core                    ``params``, ``transforms``, ``problem``, ``objectives``,        torch only: no Green's
                        ``constraints``, ``settings``, ``registry`` (problems by name)  functions, no problems
``optimizers``          one ask/tell optimizer per file; the budget loop (``driver``)   core
``campaign``            specs, run directories, leases, executors, resume               core, ``optimizers``
``report``              loading run directories, analysis, plots, markdown              ``campaign`` storage only
``cli``                 the ``invdesign`` command                                       campaign, report, core
``problems/``           concrete problems and campaign specs (outside the library)      everything above
======================  ==============================================================  =========================

Lower layers never import higher ones: ``negf``, ``scf`` and ``tb`` know nothing of optimizers, files or
problems; the framework (core, optimizers, campaign, report, cli) imports no Green's functions and no
concrete problem. Problems register themselves (``invdesign.registry``: a plain dict the framework owns,
filled where each problem is defined; ``problems/`` is found through the ``invdesign.problems`` entry
point, loaded only when a name is looked up or listed). A framework path that genuinely needs physics
(writing a design's atoms in ``invdesign export``) imports it inside that function.

``invdesign.demo`` and ``invdesign.testing`` sit beside the layer they exercise (the engine; the core).

Conventions (units, signs, which lead is which) are written once, in ``invdesign/negf/__init__.py``.
"""

__version__ = "0.1.0"

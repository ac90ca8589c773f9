"""Physical constants (CODATA 2018 exact SI values). Conventions: see ``invdesign.negf``."""

E_CHARGE_C = 1.602176634e-19  # elementary charge, C
H_PLANCK_JS = 6.62607015e-34  # Planck constant, J s
KB_EV = 8.617333262e-5  # Boltzmann constant, eV/K
G0_S = 2 * E_CHARGE_C**2 / H_PLANCK_JS  # conductance quantum 2e^2/h (spin-degenerate), S

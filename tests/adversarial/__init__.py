"""Adversarial suites: Hypothesis-generated bad input against the real contracts on anvil and
against the API; every case is counted per class (see ``tally``)."""

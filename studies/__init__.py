"""Research studies over trained runs: learning curves, paired comparisons, the validation-test
gap, the Semantic-ID report and ablation, follower calibration, popularity prior, transition
sources, decoding variants, the reproduction records and the README's table. Run each from the
repository root: `python -m studies.NAME --help`. Library code never imports this package."""

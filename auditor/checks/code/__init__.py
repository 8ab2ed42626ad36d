"""Check primitives over Python source (eval-mode, rng, no-op and invalid code patterns).

Every primitive reads the tree the Python reader parsed once (`source.facts`); none imports
or runs the user's code. The patterns are deliberately narrow: a linter that cries wolf on
correct idioms (F.dropout(x, p, self.training), SDPA gated on self.training, eval() through a
helper, Monte-Carlo dropout re-enabled module by module) gets switched off, so where the code
could be right for reasons the AST cannot see, the primitive stays silent.
"""

from auditor.checks.code import eval_mode, frozen, handwritten, invalid, noop, rng  # noqa: F401  (each registers its checks)

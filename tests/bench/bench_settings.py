"""Settings shared by the bench tests (a module of its own: ``from conftest import`` is ambiguous)."""

# tiny settings: 3 fine-tuning steps, 4 DDIM steps; the toy ground truth needs no download (and is fast),
# and sscd (no model given) shows that an unavailable metric is absent, not 0
FAST = ["--train-steps", "3", "--steps", "4", "--k", "2", "--metrics", "toy", "sscd", "--quiet"]

"""`gymops view`: a local web app over a RolloutJob output prefix or a Dataset prefix."""

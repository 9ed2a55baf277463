"""Training: losses, optimiser, the jitted step, model selection and the loop."""

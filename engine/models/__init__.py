"""Model architectures (import the submodule you need; this package imports nothing heavy).

retina_cfc: conv encoder + ncps CfC + softplus readout (seed 000).
"""

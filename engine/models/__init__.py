"""Model architectures (import the submodule you need; this package imports nothing heavy).

retina_cfc: encoder + ncps CfC + softplus readout (seed 000); its config in retina_config, its encoders
  in conv_front (convolutions) and dog_front (difference-of-Gaussians filters).
ln: linear-nonlinear baseline of the retina.
gnn: the signal GNN of the connectome and stimulus analyses (seeds 001, 003).
siren: the SIREN coordinate network (the input field).
cnn_readout: CNN core + per-neuron readout (seed 002).
rnn: bidirectional RNN and its readout (seed 004).
mlp: a plain tanh MLP (the demo's vector field).
registry: the allow-list of classes a model file may name (engine.train.model_file).
"""

"""RetinaCfC: shapes, hidden-state access, config round trip, bad input."""

import pytest
import torch

from engine.models.retina_cfc import RetinaCfC, RetinaCfCConfig, frame_windows

SMALL = dict(n_cells=3, n_frames=4, frame_size=(12, 12), channels=(4, 6), kernel_sizes=(3, 3), strides=(2, 2), encoder_features=5)


def small(**kw):
    torch.manual_seed(0)
    return RetinaCfC(RetinaCfCConfig(**{**SMALL, **kw})).eval()


def test_forward_shapes_and_hidden_states_are_the_cfc_outputs():
    model = small(units=7)
    x = torch.rand(2, 6, 4, 12, 12)
    rates, hidden = model(x)
    assert rates.shape == (2, 6, 3) and hidden.shape == (2, 6, 7)
    assert (rates >= 0).all()
    u = model.encode(x)
    assert u.shape == (2, 6, 5)
    outs, states = model.run_cfc(u)
    torch.testing.assert_close(outs, hidden)
    torch.testing.assert_close(states, hidden)  # without wiring the outputs are the whole state
    torch.testing.assert_close(model.readout(hidden), rates)
    assert model(x, return_hidden=False).shape == (2, 6, 3)


def test_hidden_states_are_the_ncps_cfc_sequence():
    # Stepping the cell ourselves must give what ncps's own CfC loop gives.
    model = small(units=7)
    u = torch.randn(2, 5, 5)
    ours, _ = model.run_cfc(u)
    theirs, hn = model.cfc(u)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(ours[:, -1], hn)


def test_single_step_and_h0_continue_a_sequence():
    model = small(units=7)
    x = torch.rand(2, 6, 4, 12, 12)
    rates, hidden = model(x)
    # Running the first 3 steps, then the rest from the final state, gives the same trajectory.
    _, states = model.run_cfc(model.encode(x[:, :3]))
    rates2, hidden2 = model(x[:, 3:], h0=states[:, -1])
    torch.testing.assert_close(hidden2, hidden[:, 3:])
    torch.testing.assert_close(rates2, rates[:, 3:])
    r1, h1 = model(x[:, 0])
    assert r1.shape == (2, 3) and h1.shape == (2, 7)
    torch.testing.assert_close(h1, hidden[:, 0])


@pytest.mark.parametrize("mode", ["default", "pure", "no_gate"])
def test_modes_and_autoncp_wiring(mode):
    model = small(units=12, wiring="autoncp", mode=mode)
    x = torch.rand(2, 3, 4, 12, 12)
    rates, hidden = model(x)
    assert model.n_hidden == 3 and model.state_size == 12
    assert hidden.shape == (2, 3, 3) and rates.shape == (2, 3, 3)
    outs, states = model.run_cfc(model.encode(x))
    assert states.shape == (2, 3, 12)
    # The NCP's outputs are its motor neurons: the last layer, the last n_outputs state entries.
    torch.testing.assert_close(outs, states[..., -3:])


def test_rebuilt_from_config_dict_gives_same_outputs():
    model = small(units=12, wiring="autoncp", channels=(3,), kernel_sizes=(5,), strides=(3,))
    cfg = model.config.to_dict()
    assert isinstance(cfg["channels"], list)
    clone = RetinaCfC.from_config(cfg).eval()
    clone.load_state_dict(model.state_dict())
    x = torch.rand(1, 4, 4, 12, 12)
    torch.testing.assert_close(clone(x)[0], model(x)[0])


def test_bad_input_and_config_raise_clear_errors():
    model = small()
    with pytest.raises(ValueError, match="frames must be"):
        model(torch.rand(2, 6, 5, 12, 12))
    with pytest.raises(ValueError, match="h0 must be"):
        model(torch.rand(2, 6, 4, 12, 12), h0=torch.zeros(2, 99))
    with pytest.raises(ValueError, match="mode"):
        RetinaCfCConfig(mode="fast").validate()
    with pytest.raises(ValueError, match="unknown RetinaCfCConfig keys"):
        RetinaCfCConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="shrinks"):
        RetinaCfC(RetinaCfCConfig(**{**SMALL, "kernel_sizes": (9, 9)}))


def test_frame_windows_is_a_view_of_the_history():
    movie = torch.arange(7 * 2 * 2, dtype=torch.float32).reshape(7, 2, 2)
    w = frame_windows(movie, 3)
    assert w.shape == (5, 3, 2, 2)
    for t in range(5):
        torch.testing.assert_close(w[t], movie[t : t + 3])
    assert w.data_ptr() == movie.data_ptr()
    with pytest.raises(ValueError):
        frame_windows(movie, 8)


def test_a_pooled_encoder_saved_with_the_pool_last_loads_with_the_same_outputs():
    """The pool now comes before the frame differences (4x cheaper); a model saved with the
    old order (its batch norm at pre.1) loads and gives the same features in eval mode."""
    from torch import nn

    cfg = RetinaCfCConfig(n_frames=6, frame_diff=True, pool=2, frame_size=(20, 20))
    torch.manual_seed(0)
    old = RetinaCfC(cfg)
    pre = old.encoder.pre
    assert isinstance(pre[0], nn.AvgPool2d)
    old.encoder.pre = nn.Sequential(pre[1], pre[2], pre[0])  # differences, batch norm, pool
    x = torch.randn(4, 5, 6, 20, 20)
    old.train()
    for _ in range(3):
        old(x)  # running statistics away from their initial values
    old.eval()
    state = old.state_dict()
    assert "encoder.pre.1.running_mean" in state
    new = RetinaCfC(cfg)
    new.load_state_dict(state)
    new.eval()
    torch.testing.assert_close(new(x)[0], old(x)[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pool", [1, 2])
def test_a_frame_diff_encoder_round_trips_its_state_at_any_pool(pool):
    cfg = RetinaCfCConfig(n_frames=6, frame_diff=True, pool=pool, frame_size=(20, 20))
    a, b = RetinaCfC(cfg), RetinaCfC(cfg)
    a.train()
    a(torch.randn(2, 3, 6, 20, 20))
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 6, 20, 20)
    torch.testing.assert_close(a.eval()(x)[0], b.eval()(x)[0])

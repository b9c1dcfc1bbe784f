"""Global L1 pruning: exact counts, the smallest weights, fractions, NCP wiring, fine-tuning."""

import pytest
import torch

from engine.models.retina_cfc import RetinaCfC, RetinaCfCConfig
from engine.prune import default_prunable, prune_global
from engine.train import TrainConfig

SMALL = dict(n_cells=2, n_frames=3, frame_size=(10, 10), channels=(3,), kernel_sizes=(3,), strides=(2,), encoder_features=4)


def model(**kw):
    torch.manual_seed(0)
    return RetinaCfC(RetinaCfCConfig(**{**SMALL, **kw}))


def cfc_weights(m):
    return {n: p.detach().clone() for n, p in m.named_parameters() if n.startswith("cfc.") and n.endswith("weight")}


def test_prune_by_count_removes_exactly_the_n_smallest_weights_globally():
    m = model(units=6, backbone_units=8)
    before = cfc_weights(m)
    other = {n: p.detach().clone() for n, p in m.named_parameters() if n not in before}
    report = prune_global(m, 20)
    after = cfc_weights(m)

    flat_before = torch.cat([w.flatten() for w in before.values()])
    flat_after = torch.cat([after[n].flatten() for n in before])
    zeroed = (flat_after == 0) & (flat_before != 0)
    assert int(zeroed.sum()) == 20 == report["pruned"] == report["zero_after"]
    # Global: the pruned ones are the 20 smallest |w| over all CfC layers together.
    assert flat_before.abs()[zeroed].max() <= flat_before.abs()[~zeroed].min()
    torch.testing.assert_close(flat_after[~zeroed], flat_before[~zeroed])
    # Nothing outside the CfC moved, and the pruning is permanent (no masks left).
    for n, p in m.named_parameters():
        if n in other:
            torch.testing.assert_close(p.detach(), other[n])
    assert not any(k.endswith("_mask") or k.endswith("_orig") for k in m.state_dict())

    by_name = {layer["name"]: layer for layer in report["layers"]}
    assert set(by_name) == {n for n in before}
    for n, w in before.items():
        assert by_name[n]["pruned"] == int((after[n] == 0).sum()) and by_name[n]["size"] == w.numel()
    assert report["candidates"] == flat_before.numel() and report["zero_before"] == 0
    assert report["fraction"] == pytest.approx(20 / flat_before.numel())


def test_prune_by_fraction():
    m = model(units=5, backbone_units=8)
    total = sum(w.numel() for w in cfc_weights(m).values())
    report = prune_global(m, 0.25)
    assert report["pruned"] == round(0.25 * total)
    assert sum(int((w == 0).sum()) for w in cfc_weights(m).values()) == report["pruned"]


def test_ncp_wiring_never_counts_absent_synapses():
    m = model(units=10, wiring="autoncp")
    masks = {id(cell.ff1): cell.sparsity_mask.detach().clone() for cell in m.cfc.modules() if getattr(cell, "sparsity_mask", None) is not None}
    assert masks, "an NCP wiring has sparsity masks: without them this test would check nothing"
    report = prune_global(m, 15)
    assert report["pruned"] == 15
    checked = 0
    for cell in m.cfc.modules():
        if id(getattr(cell, "ff1", None)) in masks:
            checked += 1
            mask = masks[id(cell.ff1)]
            # Every pruned ff1 entry was a real synapse of the wiring.
            assert ((cell.ff1.weight == 0) & (mask == 0)).sum() == 0
    assert checked == len(masks)


def test_finetune_through_train_loop_keeps_pruned_weights_zero(tmp_path):
    for i, kw in enumerate((dict(units=6, backbone_units=8), dict(units=10, wiring="autoncp"))):
        m = model(**kw)
        frames, target = torch.rand(8, 4, 3, 10, 10), torch.rand(8, 4, 2)
        report = prune_global(
            m, 0.3, finetune=TrainConfig(steps=6, batch_size=4, lr=1e-2, log_every=2, val_every=3),
            train_batches=(frames, target), val_batches=(frames, target), workdir=tmp_path / str(i),
        )
        assert report["finetune"]["steps"] == 6
        zeros = sum(int((w == 0).sum()) for w in cfc_weights(m).values())
        assert zeros == report["pruned"] == report["zero_after"]


def test_default_prunable_for_plain_models_and_bad_amounts():
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    assert len(default_prunable(net)) == 2
    report = prune_global(net, 5)
    assert report["candidates"] == 18 and report["pruned"] == 5
    with pytest.raises(ValueError, match="cannot prune 99"):
        prune_global(net, 99)
    assert prune_global(torch.nn.Linear(4, 3), 7.0)["pruned"] == 7  # a whole float is a count
    with pytest.raises(ValueError, match="fractional"):
        prune_global(net, 1.5)
    with pytest.raises(ValueError, match="int"):
        prune_global(net, "20")

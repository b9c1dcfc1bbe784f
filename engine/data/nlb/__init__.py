"""Neural Latents Benchmark exchange: NLB-style NWB datasets in, NLB submissions out.

An NLB dataset file (DANDI 000128-000140, read by ``nlb_tools.NWBDataset``) holds

* ``units`` -- ``spike_times``, ``obs_intervals`` and a boolean ``heldout``
  column: held-in neurons are the model's input, held-out neurons are predicted
  (co-smoothing);
* ``trials`` -- ``start_time``, ``stop_time``, ``split`` (``train``, ``val``,
  ``test``) and alignment fields such as ``move_onset_time``;
* behaviour as time series (``processing/behavior/hand_vel``...).

:func:`read_nlb` bins the spikes of the chosen trials, aligned on a trial field,
into the arrays the lds analysis trains on (``NLBData``: held-in and held-out
counts for the train and the evaluation trials).  :func:`write_submission` writes
rate predictions in the NLB submission layout (one HDF5 group per dataset with
``train_rates_heldin``, ``train_rates_heldout``, ``eval_rates_heldin``,
``eval_rates_heldout``), :func:`write_eval_target` the matching local evaluation
target (``eval_spikes_heldout``, ``train_behavior``, ``eval_behavior``), and
:func:`evaluate` runs ``nlb_tools.evaluation.evaluate`` on them.
:func:`write_nlb_nwb` writes the layout with pynwb from binned counts (the LDS
generator's), so the reader is tested on a file with known spikes.

Split by concern: ``reading``, ``submission``, ``layout`` (writing), ``lds`` (the lds
analysis's view).
"""

from engine.data.nlb.layout import write_nlb_nwb
from engine.data.nlb.lds import LDS_PARAMS, NLBForLDS, for_lds, write_lds_submission
from engine.data.nlb.reading import NLB_DATASETS, NLBData, read_nlb
from engine.data.nlb.submission import evaluate, submission_name, write_eval_target, write_submission

__all__ = ["NLBData", "read_nlb", "write_submission", "write_eval_target", "evaluate", "submission_name",
           "write_nlb_nwb", "NLB_DATASETS", "NLBForLDS", "for_lds", "write_lds_submission", "LDS_PARAMS"]

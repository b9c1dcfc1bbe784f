"""One way to run embarrassingly parallel work: joblib over a backend chosen per session.

Every parallel loop of the engine (SINDy ensembles, :func:`engine.metrics.score_table`,
MEIs per neuron) goes through :func:`imap` (results as they finish) or :func:`pmap`
(results in order).  Which machines run the work is not the call site's business: it is
the session's ``parallel`` setting, entered around every job step by the job runner.

``loky``
    joblib's default, processes on this machine.  Call sites keep their own local
    preference (``prefer="threads"`` where the work releases the GIL and copying the inputs
    would cost more than it saves).
``dask``
    a ``distributed`` Client: on the scheduler at ``address`` (``tcp://host:8786``), or on a
    ``LocalCluster`` of ``n_workers`` single-threaded processes started on first use and
    closed when the step ends.  Needs ``pip install "neuro-workbench[dask]"``.
``ray``
    ray's joblib backend on the cluster at ``address`` (or a local ray).  Needs
    ``pip install "neuro-workbench[ray]"``.

Where the cluster is, is never read from a session: a session is a file someone may have
handed you, and a scheduler it named would receive your data and send back pickles that
run on your machine.  A session stores only the backend's name and the number of local
workers, signed with a key that only this user has (``parallel.key`` in the user's config
folder); the address comes from the user's own settings: ``$WORKBENCH_DASK_ADDRESS`` /
``$WORKBENCH_RAY_ADDRESS``, else ``parallel.toml`` in the same folder (written by
``workbench parallel set address ...``: the user typing it is the confirmation).  A session
whose setting this user did not sign (made elsewhere, or by an older version that stored an
address) runs on loky, and :func:`notice` says so in one line.

Under ``dask``/``ray`` a call site's ``n_jobs=None`` means every worker of the cluster; an
explicit ``n_jobs=1`` runs in this process (and so does joblib on a one-core dask cluster).  Progress (``done/total``)
goes to the step's reporter as results arrive, from every backend; a cancel request stops
the loop at the next result and drops the tasks not yet started.

Split by concern: ``config`` (the setting as data), ``settings`` (where it comes from:
the session, signed; addresses from the user's own settings), ``backend`` (the active
backend and its cluster), ``loops`` (:func:`imap`, :func:`pmap`).
"""

from engine.errors import ParallelError
from engine.parallel.backend import ActiveBackend, active, parallel_backend, session_backend
from engine.parallel.config import BACKENDS, MAX_WORKERS, ParallelConfig, backend_from_config, check_installed
from engine.parallel.loops import imap, pmap
from engine.parallel.settings import (ADDRESS_ENV, CONFIG_SCOPE, load_config, notice, save_config,
                                      set_user_address, user_address, user_settings_path)

__all__ = ["ADDRESS_ENV", "ActiveBackend", "BACKENDS", "CONFIG_SCOPE", "MAX_WORKERS", "ParallelConfig",
           "ParallelError", "active", "backend_from_config", "check_installed", "imap", "load_config", "notice", "parallel_backend", "pmap", "save_config", "session_backend", "set_user_address",
           "user_address", "user_settings_path"]

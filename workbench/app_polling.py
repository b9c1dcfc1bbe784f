"""The app's store poll: reading the session from a thread worker, folding each update into
the panes, telling when jobs end; the device probe.  A mixin of
:class:`workbench.app.WorkbenchApp`, which keeps the message handlers (``@on``) that call it.
"""

from __future__ import annotations

from textual import work

from engine.session import END_STATES, Session
from workbench.messages import DeviceInfo, StoreUpdate


class StorePolling:
    """Polling the session store (the handlers that receive the updates are on the app)."""

    def _polling(self) -> bool:
        return any(w.group == "poll" and not w.is_finished for w in self.workers)

    def _poll_tick(self) -> None:
        # a poll still reading (a loaded machine, a big session) is left to finish, and the
        # next tick comes soon; polls never overlap, so no event is folded in twice
        if not self._polling():
            self.poll_store()

    def request_poll(self) -> None:
        """Read the store now (after this app started, cancelled or resumed a job)."""
        if self._polling():
            self._poll_again = True  # the poll in flight reads once more before it ends
        else:
            self.poll_store()

    @work(thread=True, group="poll", exit_on_error=False, name="poll")
    def poll_store(self) -> None:
        from engine.jobs.runner import reconcile

        while True:
            self._poll_again = False
            if not self.readonly and self._first_update:
                # our own write connection may not be used from this thread; open one
                with Session(self.session.path, create=False) as w:
                    reconcile(w)
            jobs = self.store.jobs()
            events = self.store.events(after=self._last_event, limit=5000)
            versions = self.store.versions()
            progress = {j.id: p for j in jobs if j.active and (p := self.store.latest_progress(j.id))}
            if events:
                self._last_event = events[-1].id
            self.post_message(StoreUpdate(jobs, events, *versions, first=self._first_update,
                                          progress=progress))
            self._first_update = False
            if not self._poll_again:
                return

    def _fold_update(self, msg: StoreUpdate) -> None:
        self.status.set_jobs(msg.jobs, msg.progress)
        self.last_jobs, self.last_progress = msg.jobs, msg.progress
        self._redraw_jobs()
        self._notify_endings(msg)
        for pane in self.panes:
            pane.store_update(msg)
        if any(e.kind == "artifact" and e.payload.get("artifact_kind") == "hdf5" for e in msg.events):
            for pane in self.query("#datasets-pane"):  # a job wrote a new HDF5 file
                pane.set_paths(self.dataset_paths())

    def _notify_endings(self, msg: StoreUpdate) -> None:
        if msg.first:
            unseen = [j for j in msg.jobs if j.state in END_STATES and not j.seen]
            if unseen:
                finished = sum(j.state == "finished" for j in unseen)
                other = len(unseen) - finished
                text = f"{finished} job{'s' * (finished != 1)} finished while you were away"
                if other:
                    text += f", {other} ended otherwise (failed, cancelled or interrupted)"
                self.notify(text, timeout=8)
                self._mark_seen(unseen)
        else:
            ended = [j for j in msg.jobs if j.state in END_STATES
                     and self._job_states.get(j.id) not in (None, *END_STATES)]
            for j in ended:
                severity = "information" if j.state == "finished" else "error"
                self.notify(f"{j.analysis} {j.state}" + (f": {j.error}" if j.error else ""),
                            title=j.id, severity=severity, timeout=10)
                if self.config_bell():
                    self.bell()
            self._mark_seen(ended)
        self._job_states = {j.id: j.state for j in msg.jobs}

    def config_bell(self) -> bool:
        """Ring the terminal bell when a job ends: ``bell = true`` in the config file."""
        return self.config.bell

    def _mark_seen(self, jobs) -> None:
        if self.readonly:
            return
        for j in jobs:
            self.session.update_job(j.id, seen=1)

    @work(thread=True, exclusive=True, group="device", exit_on_error=False, name="device")
    def probe_device(self) -> None:
        from workbench.device_probe import probe

        text, gpus = probe()
        self.post_message(DeviceInfo(text, gpus))

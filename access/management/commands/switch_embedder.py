"""manage.py switch_embedder [NAME] [--status] [--wait] [--confirm] [--cancel] [--prune]: switch the active
embedder in the background (access.model_switch); the engine worker does the re-embedding."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from access import model_switch
from recognition.models import EmbedderState

POLL_S = 0.5


class Command(BaseCommand):
    help = (
        "Start switching the active embedder to NAME: the engine worker re-embeds every enrolled photo while "
        "the active model keeps deciding, and the target takes over once every photo is done (with failures "
        "it waits: --confirm switches anyway, --cancel stops). Site thresholds follow their model."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", nargs="?", help="The target embedder (e.g. facenet-irv1).")
        parser.add_argument("--status", action="store_true", help="Show the switch and exit.")
        parser.add_argument("--wait", action="store_true", help="Show a progress bar until the switch ends.")
        parser.add_argument("--confirm", action="store_true", help="Switch although some photos failed.")
        parser.add_argument("--cancel", action="store_true", help="Stop the switch; the active model stays.")
        parser.add_argument("--prune", action="store_true",
                            help="Delete the embeddings of every model but the active one (no switch back "
                                 "without re-embedding).")

    def handle(self, *args, name: str | None, status: bool, wait: bool, confirm: bool, cancel: bool, prune: bool,
               **opts) -> None:
        try:
            if cancel:
                model_switch.cancel(by="manage.py")
            elif confirm:
                model_switch.confirm(by="manage.py")
            elif prune:
                self.stdout.write(f"deleted {model_switch.prune_other_models()} embeddings of other models")
                return
            elif name:
                model_switch.start(name, by="manage.py")
            elif not (status or wait):
                raise CommandError("give a model NAME, or --status, --wait, --confirm, --cancel, --prune")
        except model_switch.SwitchError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from None
        if wait:
            self._wait()
        self._show()

    def _show(self) -> None:
        s = model_switch.status()
        self.stdout.write(f"active: {s['active']['name']}   state: {s['state']}"
                          + (f"   target: {s['target']['name']}" if s["target"] else ""))
        if s["target"]:
            self.stdout.write(f"photos: {s['done']} of {s['total']} re-embedded, {s['failed']} failed")
        for f in s["failures"]:
            self.stdout.write(f"  photo {f['image']} (person {f['person']}): {f['reason']}")
        for p in s["people_losing_last_photo"]:
            self.stdout.write(f"  {p['name']} (person {p['id']}) would lose their last usable photo")
        if s["message"]:
            self.stdout.write(s["message"])
        for site in s["sites"]:
            self.stdout.write(f"site {site['name']}: {site['threshold']:.3f} for {site['threshold_model']}"
                              + (f"  ({site['note']})" if site["note"] else ""))

    def _wait(self) -> None:
        """Follow the worker's progress until the switch is no longer re-embedding."""
        row = EmbedderState.objects.filter(pk=1).first()
        if row is None or row.state != EmbedderState.State.REEMBEDDING:
            return
        with tqdm(total=row.total or None, unit="photo", desc=row.target_name) as bar:
            while row.state == EmbedderState.State.REEMBEDDING:
                bar.total = row.total
                bar.n = row.done + row.failed
                bar.set_postfix(failed=row.failed)
                bar.refresh()
                time.sleep(POLL_S)  # a progress display's refresh rate
                row.refresh_from_db()
            bar.n = row.done + row.failed
            bar.refresh()

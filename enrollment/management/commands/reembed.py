"""manage.py reembed [--model NAME] [--sync]: embed every face image again (e.g. with a new model)."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from tqdm import tqdm

from enrollment.models import FaceEmbedding, FaceImage


class Command(BaseCommand):
    help = (
        "Re-embed every face image with the current model (or --model). Embeddings of other models are kept "
        "(never compared) unless --prune. To change the model that decides, use manage.py switch_embedder NAME "
        "(it re-embeds in the background itself, then switches, remapping site thresholds)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model", help="Embedder name (default: the current one).")
        parser.add_argument("--sync", action="store_true", help="Run here instead of queueing it for the worker.")
        parser.add_argument("--prune", action="store_true", help="Afterwards delete embeddings of other models.")

    def handle(self, *args, model: str | None, sync: bool, prune: bool, **opts) -> None:
        if not sync:
            from enrollment.tasks import reembed_all

            if prune:
                self.stderr.write("--prune needs --sync (it must wait for the new embeddings)")
                return
            result = reembed_all.delay(model)
            self.stdout.write(f"queued re-embedding of {FaceImage.objects.count()} images (task {result.id})")
            return
        from enrollment.embedding import reembed_all
        from recognition.pipelines import get_pipeline

        pipeline = get_pipeline(model)
        total = FaceImage.objects.count()
        with tqdm(total=total, unit="img", desc=f"{pipeline.embedder_name}-{pipeline.embedder_version}") as bar:
            counts = reembed_all(model, progress=lambda pk, outcome: bar.update(1))
        self.stdout.write("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no face images")
        if prune:
            stale = FaceEmbedding.objects.exclude(
                model_name=pipeline.embedder_name, model_version=pipeline.embedder_version
            )
            deleted, _ = stale.delete()
            self.stdout.write(f"pruned {deleted} embeddings of other models")

# Issue 17, item 4: a webhook URL must be http(s), without credentials, to a public address or an allowed one
# (faceaccess.outbound: a validator, no change to the table); and a delivery row's error is one of a few fixed words,
# never a receiver's or an exception's text: the rows written before are reworded the same way.

import faceaccess.outbound
from django.db import migrations, models

WORDS = [("timed out", "timeout"), ("timeout", "timeout"), ("refused", "connection refused"),
         ("reset", "connection reset"), ("name or service not known", "name not resolved"),
         ("nodename nor servname", "name not resolved"), ("ssl", "TLS error"), ("certificate", "TLS error")]


def reword_errors(apps, schema_editor):
    delivery = apps.get_model("access", "WebhookDelivery")
    for row in delivery.objects.exclude(error="").only("pk", "error", "status_code").iterator():
        text = row.error
        if text.startswith("HTTP ") and text[5:].isdigit():
            continue
        lower = text.lower()
        word = next((w for needle, w in WORDS if needle in lower), None)
        if word is None:
            word = f"HTTP {row.status_code}" if row.status_code else "connection failed"
        delivery.objects.filter(pk=row.pk).update(error=word)


class Migration(migrations.Migration):

    dependencies = [
        ('access', '0013_liveness'),
    ]

    operations = [
        migrations.AlterField(
            model_name='camera',
            name='webhook_url',
            field=models.URLField(blank=True, help_text='Optional: POST every decision here (JSON, signed with the secret).', max_length=500, validators=[faceaccess.outbound.validate_url]),
        ),
        migrations.RunPython(reword_errors, migrations.RunPython.noop),
    ]

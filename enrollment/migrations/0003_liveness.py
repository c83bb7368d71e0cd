# Liveness (issue 16): the live score of an enrollment photo's face (a warning on a likely recapture).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('enrollment', '0002_face_candidates'),
    ]

    operations = [
        migrations.AddField(
            model_name='faceimage',
            name='liveness',
            field=models.FloatField(blank=True, help_text='Live score 0..1 (low: a print or a screen).', null=True),
        ),
    ]

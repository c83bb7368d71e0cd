# Liveness (issue 16). Existing sites keep deciding as before (policy off); new sites start in monitor.

import access.liveness
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('access', '0012_event_door_handled_removed'),
    ]

    operations = [
        migrations.AddField(
            model_name='accessevent',
            name='liveness',
            field=models.FloatField(blank=True, help_text='Live score of the deciding face (0..1).', null=True),
        ),
        migrations.AddField(
            model_name='accessevent',
            name='liveness_policy',
            field=models.CharField(blank=True, max_length=10),
        ),
        migrations.AddField(
            model_name='accessevent',
            name='liveness_threshold',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='accessevent',
            name='reason_code',
            field=models.CharField(blank=True, db_index=True, help_text="The decision's cause in one word when it has one (presentation_attack, liveness_unchecked).", max_length=32),
        ),
        migrations.AddField(
            model_name='accesseventface',
            name='liveness',
            field=models.FloatField(blank=True, help_text='Live score 0..1 (low: a print or a screen).', null=True),
        ),
        migrations.AddField(
            model_name='site',
            name='liveness_policy',
            field=models.CharField(choices=[('off', 'off: not scored'), ('monitor', 'monitor: scored and recorded, decisions unchanged'), ('enforce', 'enforce: a face under the threshold is denied')], default='off', help_text="Passive liveness against printed photos and screens held up to the camera. Watch the site's live scores in monitor before enforcing.", max_length=10),
        ),
        migrations.AddField(
            model_name='site',
            name='liveness_threshold',
            field=models.FloatField(default=0.022, help_text='A matched face whose live score (0..1) is under this is taken for a print or a screen.', validators=[access.liveness.validate_liveness_threshold]),
        ),
        migrations.AlterField(
            model_name='site',
            name='liveness_policy',
            field=models.CharField(choices=[('off', 'off: not scored'), ('monitor', 'monitor: scored and recorded, decisions unchanged'), ('enforce', 'enforce: a face under the threshold is denied')], default='monitor', help_text="Passive liveness against printed photos and screens held up to the camera. Watch the site's live scores in monitor before enforcing.", max_length=10),
        ),
    ]

# The door is one explicit step of the worker after its claiming UPDATE (access.outputs.door): no flag needed.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('access', '0011_site_detection_policy_close'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='accessevent',
            name='door_handled',
        ),
    ]

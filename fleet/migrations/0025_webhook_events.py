# Webhook events (issue 16): channels subscribe to events (existing ones keep the alerts); a command.finished
# delivery names its command and is made once per channel and command.

import django.db.models.deletion
import fleet.models.alerts
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('fleet', '0024_decision_keys'),
    ]

    operations = [
        migrations.AddField(
            model_name='channel',
            name='events',
            field=models.JSONField(default=fleet.models.alerts.default_events),
        ),
        migrations.AddField(
            model_name='delivery',
            name='command',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='fleet.command'),
        ),
        migrations.AddConstraint(
            model_name='delivery',
            constraint=models.UniqueConstraint(condition=models.Q(('command__isnull', False)), fields=('channel', 'command', 'event'), name='delivery_once_per_command'),
        ),
    ]

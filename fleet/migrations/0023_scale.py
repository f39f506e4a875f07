# Scale (issue 13 item 9): the minute tick wakes only due schedules; the sweep skips accounts that cannot send yet.

import fleet.models.accounts
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('fleet', '0022_pages'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='schedule',
            name='wake_at',
            field=models.DateTimeField(default=fleet.models.accounts.long_ago),
        ),
        migrations.AddField(
            model_name='solaxaccount',
            name='send_not_before',
            field=models.DateTimeField(default=fleet.models.accounts.long_ago, editable=False),
        ),
        migrations.AddIndex(
            model_name='schedule',
            index=models.Index(fields=['enabled', 'wake_at'], name='schedule_wake'),
        ),
        migrations.AddIndex(
            model_name='solaxaccount',
            index=models.Index(fields=['send_not_before'], name='account_send_not_before'),
        ),
        migrations.AddIndex(
            model_name='commandbatch',
            index=models.Index(fields=['command', 'state'], name='batch_state'),
        ),
    ]

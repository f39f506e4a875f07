"""The EV callback secret: keep only its hash (for the lookup) and its ciphertext (to send it to SolaX)."""

from django.db import migrations, models

from fleet import crypto


def forwards(apps, schema_editor):
    SolaxAccount = apps.get_model("fleet", "SolaxAccount")
    for account in SolaxAccount.objects.only("pk", "callback_secret"):
        account.callback_secret_hash = crypto.secret_hash(account.callback_secret)
        account.callback_secret_ciphertext = crypto.encrypt(account.callback_secret)
        account.save(update_fields=["callback_secret_hash", "callback_secret_ciphertext"])


def backwards(apps, schema_editor):
    SolaxAccount = apps.get_model("fleet", "SolaxAccount")
    for account in SolaxAccount.objects.only("pk", "callback_secret_ciphertext"):
        account.callback_secret = crypto.decrypt(account.callback_secret_ciphertext)
        account.save(update_fields=["callback_secret"])


class Migration(migrations.Migration):

    dependencies = [
        ("fleet", "0014_token_digest"),
    ]

    operations = [
        migrations.AddField(
            model_name="solaxaccount",
            name="callback_secret_hash",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="solaxaccount",
            name="callback_secret_ciphertext",
            field=models.TextField(default="", editable=False),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="solaxaccount",
            name="callback_secret",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(
            model_name="solaxaccount",
            name="callback_secret",
        ),
        migrations.AlterField(
            model_name="solaxaccount",
            name="callback_secret_hash",
            field=models.CharField(editable=False, max_length=64, unique=True),
        ),
    ]

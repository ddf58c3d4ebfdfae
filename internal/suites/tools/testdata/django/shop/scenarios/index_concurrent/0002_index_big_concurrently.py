from django.db import migrations, models
from django.contrib.postgres.operations import AddIndexConcurrently


class Migration(migrations.Migration):
    # Django's way to run an operation outside a transaction.
    atomic = False
    dependencies = [("shop", "0001_create_payees")]
    operations = [
        AddIndexConcurrently("big", models.Index(fields=["account"], name="big_account_cidx")),
    ]

from django.db import migrations, models


class Migration(migrations.Migration):
    # Django's default: the migration runs in a transaction (atomic = True).
    dependencies = [("shop", "0001_create_payees")]
    operations = [
        migrations.AddIndex("big", models.Index(fields=["account"], name="big_account_idx")),
    ]

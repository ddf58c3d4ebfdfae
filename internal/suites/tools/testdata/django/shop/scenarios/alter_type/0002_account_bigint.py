from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_create_payees")]
    operations = [
        migrations.AlterField("big", "account", models.BigIntegerField()),
    ]

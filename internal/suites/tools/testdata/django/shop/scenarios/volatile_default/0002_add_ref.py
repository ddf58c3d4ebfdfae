from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_create_payees")]
    operations = [
        # Django 3.2 has no database defaults: a volatile one takes RunSQL.
        migrations.RunSQL(
            "ALTER TABLE big ADD COLUMN ref uuid DEFAULT gen_random_uuid()",
            "ALTER TABLE big DROP COLUMN ref",
        ),
    ]

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_add_nickname")]
    operations = [
        migrations.AddIndex("small", models.Index(fields=["v"], name="small_v_idx")),
    ]

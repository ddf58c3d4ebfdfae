# Holds ActiveRecord's advisory lock until the test opens the gate (see together_test.go).
class Slow < ActiveRecord::Migration[6.1]
  def up
    execute "DO $$ BEGIN WHILE NOT EXISTS (SELECT FROM gate WHERE open) LOOP PERFORM pg_sleep(0.05); END LOOP; END $$"
  end
end

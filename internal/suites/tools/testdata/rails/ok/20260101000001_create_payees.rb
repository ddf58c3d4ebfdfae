class CreatePayees < ActiveRecord::Migration[6.1]
  def change
    create_table :payees do |t|
      t.text :name, null: false
    end
  end
end

class AddRef < ActiveRecord::Migration[6.1]
  def change
    add_column :big, :ref, :uuid, default: -> { "gen_random_uuid()" }
  end
end

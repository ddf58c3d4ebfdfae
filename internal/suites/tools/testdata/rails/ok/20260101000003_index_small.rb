class IndexSmall < ActiveRecord::Migration[6.1]
  def change
    add_index :small, :v, name: "small_v_idx"
  end
end

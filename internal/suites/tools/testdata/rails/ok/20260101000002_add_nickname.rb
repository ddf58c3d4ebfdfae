class AddNickname < ActiveRecord::Migration[6.1]
  def change
    add_column :big, :nickname, :text
  end
end

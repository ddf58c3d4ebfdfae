class AccountBigint < ActiveRecord::Migration[6.1]
  def up
    change_column :big, :account, :bigint
  end
end

'use strict';
// createTable + addIndex + addConstraint on the new table, in one transaction.
module.exports = {
  async up(queryInterface, Sequelize) {
    await queryInterface.sequelize.transaction(async (transaction) => {
      await queryInterface.createTable('Payees', {
        id: { type: Sequelize.BIGINT, primaryKey: true, autoIncrement: true },
        accountId: { type: Sequelize.BIGINT, allowNull: false },
        name: { type: Sequelize.TEXT, allowNull: false },
        createdAt: { type: Sequelize.DATE, allowNull: false },
        updatedAt: { type: Sequelize.DATE, allowNull: false },
      }, { transaction });
      await queryInterface.addIndex('Payees', ['accountId'], { name: 'payees_account_id', transaction });
      await queryInterface.addConstraint('Payees', {
        fields: ['accountId'], type: 'foreign key', name: 'payees_account_fk',
        references: { table: 'Accounts', field: 'id' }, transaction,
      });
      await queryInterface.addConstraint('Payees', {
        fields: ['accountId', 'name'], type: 'unique', name: 'payees_account_name_key', transaction,
      });
    });
  },
  async down(queryInterface) {
    await queryInterface.dropTable('Payees');
  },
};

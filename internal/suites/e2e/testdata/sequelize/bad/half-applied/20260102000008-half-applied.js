'use strict';
// sequelize-cli does not wrap a migration in a transaction: the first
// statement commits before the second is refused.
module.exports = {
  async up(queryInterface, Sequelize) {
    await queryInterface.addColumn('Accounts', 'nickname2', { type: Sequelize.TEXT });
    await queryInterface.addColumn('JournalLines', 'reference', {
      type: Sequelize.UUID, defaultValue: Sequelize.fn('gen_random_uuid'),
    });
  },
  async down() {},
};

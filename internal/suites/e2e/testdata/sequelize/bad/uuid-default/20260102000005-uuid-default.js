'use strict';
module.exports = {
  async up(queryInterface, Sequelize) {
    await queryInterface.addColumn('JournalLines', 'reference', {
      type: Sequelize.UUID, defaultValue: Sequelize.fn('gen_random_uuid'),
    });
  },
  async down() {},
};
